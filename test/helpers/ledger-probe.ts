/**
 * Another process on the lead ledger, for tests: `node --import tsx test/helpers/ledger-probe.ts`
 * with DATA_DIR (and no DATABASE_URL) opens the embedded database as leadctl would, through
 * openDatabase({ dataDir }): the one DATA_DIR/ledger.url announces, else hosted here. Prints one
 * JSON line { pid, url, describe, embedded, leads, tables }, then holds it open for HOLD_MS
 * (default 0) before closing. A failure is one line on stderr and exit code 1.
 */
import { openDatabase } from '../../src/ledger/database.js';

try {
  const db = await openDatabase({ dataDir: process.env.DATA_DIR!, waitMs: Number(process.env.WAIT_MS ?? 30_000) });
  const leads = await db.pool.query('SELECT count(*)::int AS n FROM leads');
  const tables = await db.pool.query(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
  );
  console.log(
    JSON.stringify({
      pid: process.pid,
      url: db.url,
      describe: db.describe,
      embedded: db.embedded,
      leads: leads.rows[0].n,
      tables: tables.rows.map((r: { table_name: string }) => r.table_name),
    }),
  );
  await new Promise((r) => setTimeout(r, Number(process.env.HOLD_MS ?? 0)));
  await db.close();
} catch (err) {
  console.error(`ledger-probe: ${(err as Error).message}`);
  process.exit(1);
}
